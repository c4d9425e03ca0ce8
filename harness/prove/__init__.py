"""`deputy prove`: the reliability and security proof, run against the real processes and a real Redis.

runner.py holds the one list of scenarios; faults.py, storms.py, fuzzing.py, injection.py and
outages.py each hold one family; cluster.py starts and kills the processes; report.py is the table."""
