"""Deputy's benchmarks, evaluations and reliability proof, with the local servers that speak the
platforms' wire protocols. Runs from a source checkout; it is not part of the installed product."""
