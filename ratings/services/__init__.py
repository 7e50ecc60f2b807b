"""Writes of the rating app, one module per domain. Views, the admin, commands and jobs call these.
"""
