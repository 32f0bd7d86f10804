"""What runs inside a worker process around the tasks: loaded models, side effects, metrics.

Nothing here is imported by a web service or the command line.
"""
