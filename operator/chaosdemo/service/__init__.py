"""What the operator does besides running demos: leadership among replicas, the undo reconciler, the evaluation."""
