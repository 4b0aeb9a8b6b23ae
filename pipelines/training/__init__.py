"""The train stage: a short recipe (``recipe.py``) over its components (cache, objective, selection, the
contrastive step a kept probe may get, publish), its parameters and cost meter. dvc.yaml's ``train`` stage
depends on this folder."""
