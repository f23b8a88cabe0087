"""Every run in FLOW_RUNS (comma-separated ids) lists FLOW_VERSION among its logged artifacts."""
import os

import wandb

from common import ENTITY, PROJECT, check, done

api = wandb.Api()
want = os.environ["FLOW_VERSION"]
for run_id in os.environ["FLOW_RUNS"].split(","):
    logged = [a.name for a in api.run(f"{ENTITY}/{PROJECT}/{run_id}").logged_artifacts()]
    check(logged == [want], "run %s logged %r, want [%r]" % (run_id, logged, want))
done()
