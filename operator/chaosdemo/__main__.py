from chaosdemo.cli import main

raise SystemExit(main())
