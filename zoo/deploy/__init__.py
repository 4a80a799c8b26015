"""After training: ``zoo-export`` (:mod:`~zoo.deploy.export`), ``zoo-predict``
(:mod:`~zoo.deploy.predict`) and reading a trained ``model.keras`` safely
(:mod:`~zoo.deploy.model_file`)."""
