"""`python -m training`: the trainer's steps on a laptop, its cloud run, and operator commands.

main.py holds the command table and imports only the module of the command that runs, so the
help of a cloud command does not load numpy and scikit-learn, nor a local one boto3.
"""
