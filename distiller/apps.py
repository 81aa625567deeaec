from django.apps import AppConfig


class DistillerConfig(AppConfig):
    name = "distiller"
    verbose_name = "Distillation"
