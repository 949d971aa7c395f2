"""The pure core: events and `now` in, commands out. No I/O, no clock reads, no randomness
except what is passed in. Driven by the asyncio runtime and by the simulator alike."""
