"""The FlareWatch web page and read-only API, mounted on Airflow's api-server by the plugin in
``plugins/`` (``web.app.create_app``)."""
