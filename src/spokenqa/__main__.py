from spokenqa.cli import main

raise SystemExit(main())
