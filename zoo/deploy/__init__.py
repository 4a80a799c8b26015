"""After training: `zoo-export` ([`zoo.deploy.export`][], which never writes over what
is not its own: [`zoo.deploy.safe_output`][]), `zoo-predict`
([`zoo.deploy.predict`][]) and reading a trained `model.keras` safely
([`zoo.deploy.model_file`][])."""
