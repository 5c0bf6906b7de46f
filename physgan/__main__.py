from physgan.cli import main

raise SystemExit(main())
