"""STAND-INS for PD, TiKV and tidb-operator's status sync, run as pods on the kind tier.

Real PD and TiKV cannot be had here (no registry, and their modules are not
served), so these processes stand in for them, with the standard library
only, inside an image whose name says stand-in:

- ``pd_server``: the PD pod. PD's HTTP API from ``pd_model``; a store's state
  comes only from the heartbeats the TiKV stand-ins send it over the pod
  network, as in real PD. Never from Kubernetes.
- ``tikv_server``: each TiKV pod. Listens on TiKV's server and status ports
  and heartbeats to PD every 10 s (scaled); on SIGTERM it says goodbye and
  shuts down like a TiKV.
- ``tidb_operator_sync``: tidb-operator's status sync of the TidbCluster,
  from PD's answers, until the real tidb-operator replaces it.
"""
