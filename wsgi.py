"""WSGI entry point: `gunicorn -c gunicorn.conf.py wsgi:app`. Reads `.env` (development) before building the app."""

from dotenv import load_dotenv

from taskapi import create_app

load_dotenv()
app = create_app()
