"""har_train: train HAR models with Keras 3 (any backend) and write run folders for har-export.

Importing this package loads no Keras backend; see har_train.cli for the `har-train` command.
"""
