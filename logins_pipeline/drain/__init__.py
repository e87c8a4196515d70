"""The drain engine: receive a chunk, build its batch, COMMIT, then delete (ingest.py runs the loop), with the
pieces it needs to do that fast and exactly: pipelined builds (pipeline.py), isolating a bad message
(isolation.py), keeping held messages hidden (visibility.py), fault injection for the tests (failpoints.py),
and putting dead-lettered messages back (redrive.py)."""
