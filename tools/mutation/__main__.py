import sys

from tools.mutation.runner import main

sys.exit(main())
