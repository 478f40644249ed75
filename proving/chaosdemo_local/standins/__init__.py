"""STAND-INS for PD, TiKV and TiDB, run by the real tidb-operator in the kind tier's pods.

Real PD, TiKV and TiDB cannot be had here (no registry, and their modules are
not served), so these processes stand in for them, with the standard library
only, inside images whose names say stand-in. tidb-operator starts them with
the scripts and flags it writes for the real servers (``/pd-server``,
``/tikv-server``, ``/tidb-server``):

- ``pd_server``: the PD pod. PD's HTTP API from ``pd_model``, and a real etcd
  behind the same port, as PD embeds one; a store's state comes only from the
  heartbeats the TiKV stand-ins send it over the pod network, as in real PD.
  Never from Kubernetes.
- ``tikv_server``: each TiKV pod. Listens on TiKV's server and status ports
  and heartbeats to PD every 10 s (scaled); on SIGTERM it says goodbye and
  shuts down like a TiKV.
- ``tidb_server``: the TiDB pod. TiDB's ports and its status answer, which is
  what tidb-operator reads of a TiDB member.
"""
