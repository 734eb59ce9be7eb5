"""The ``daecf`` command line: commands, demo, benchmark, exports and PNG strips. The top of the runtime.
"""
