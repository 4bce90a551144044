"""Flask extension objects, created unbound and attached to an app in ``create_app``."""

from flask_sqlalchemy import SQLAlchemy

from authserver.models import Base

db = SQLAlchemy(model_class=Base)
