"""``python -m zoo``: print the table of registered models (the README embeds it)."""

import zoo
from zoo.models import models_table

if __name__ == "__main__":
    print(f"zoo {zoo.__version__}: {len(zoo.list_models())} models\n")
    print(models_table())
