"""X-Ray's trading runtime: loads promoted artefacts and trades for each user.

It never imports xray_pipelines (and the pipelines never import it); the two meet only through
artefacts: the promoted bundle and MLflow aliases. The service itself arrives with issue 5."""
