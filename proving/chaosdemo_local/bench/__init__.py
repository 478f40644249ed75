"""`make bench`: the benchmark (benchmark) and the fleet of SIMULATED TidbClusters it drives (fleet)."""
