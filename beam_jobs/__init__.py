"""The Apache Beam jobs of kcbert-tf: each a composite ``PTransform`` plus a thin ``run(argv)``."""
