"""Creates the peer's tables and COUNT API keys; prints the keys, one a line."""
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from rest_framework_api_key.models import APIKey  # noqa: E402

call_command("migrate", verbosity=0)
for i in range(int(sys.argv[1])):
    _, key = APIKey.objects.create_key(name=f"bench {i}")
    print(key)
