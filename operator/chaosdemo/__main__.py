from chaosdemo.edge.cli import main

raise SystemExit(main())
