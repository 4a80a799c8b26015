"""After training: ``zoo-export`` (:mod:`~zoo.deploy.export`, which never writes over what
is not its own: :mod:`~zoo.deploy.safe_output`), ``zoo-predict``
(:mod:`~zoo.deploy.predict`) and reading a trained ``model.keras`` safely
(:mod:`~zoo.deploy.model_file`)."""
