from django.db import migrations, models


def create_row(apps, schema_editor):
    apps.get_model("newsletter", "ContentVersion").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [
        ("newsletter", "0004_sender_defaults_to_default_from_email"),
    ]

    operations = [
        migrations.CreateModel(
            name="ContentVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("version", models.PositiveBigIntegerField(default=1)),
            ],
        ),
        migrations.RunPython(create_row, migrations.RunPython.noop),
    ]
