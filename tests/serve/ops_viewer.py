"""Asks the server who the key is (`wandb.Api().viewer`, the SDK's login check) and reports
whether the server accepted the key; a refused key is a result here, not a failure."""
import json
import wandb
from common import done

try:
    viewer = wandb.Api(timeout=20).viewer
    done({"ok": True, "username": viewer.username, "entity": viewer.entity})
except Exception as e:  # the SDK raises its own error types for a refused key
    print("FLOW-RESULT " + json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
