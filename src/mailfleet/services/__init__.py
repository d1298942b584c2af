"""Services: every unit of work an interface or the runtime triggers.

Each service is a function of a session or :class:`~mailfleet.store.Database`, the
time (or a clock) and the ports it needs, and returns a dataclass. Services are the
only place that writes business state; the CLI, the public endpoint, the API, the
dashboard and the runtime call them and render what they return.
"""
