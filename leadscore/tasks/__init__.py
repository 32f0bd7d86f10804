"""Task definitions: thin JSON adapters over ``ml_core``, one module per kind of work.

Workers import every module here at start (``app.conf.include``); a web service imports only
the module of the task it calls (``from leadscore import score_lead``).
"""
