"""A delivery is written three times during its send (claimed, marked sending,
sent), and each write of a row updates every index on it: the send's own index
goes, since the claim index and the unique constraint both start with the send."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sending", "0006_welcome_step_names"),
    ]

    operations = [
        migrations.AlterField(
            model_name="delivery",
            name="send",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="deliveries",
                to="sending.send",
            ),
        ),
    ]
