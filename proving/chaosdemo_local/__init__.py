"""The local proving ground: a real Kubernetes control plane with simulated kubelets, TiKV and PD.

Nothing in here ships with the operator's behaviour; it is what ``make demo``
and the local test tier stand on. What is simulated says so in its name:
the kubelets (kwok), tidb-operator's objects (``cluster.tidb_operator``), PD and
its TiKV stores (``simulation.pd_sim``), and the Anthropic endpoint
(``simulation.fake_claude``).
"""
