"""The local proving ground: a real Kubernetes control plane with simulated kubelets, TiKV and PD.

Nothing in here ships with the operator's behaviour; it is what ``make demo``
and the local test tier stand on. What is simulated says so in its name:
the kubelets (kwok), tidb-operator's objects (``tidb_standin``), PD and its
TiKV stores (``pd_sim``), and the Anthropic endpoint (``fake_claude``).
"""
