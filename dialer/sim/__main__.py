from dialer.sim.bench import main

raise SystemExit(main())
