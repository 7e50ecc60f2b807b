from django.core.management.base import BaseCommand

from evalsite import demo


class Command(BaseCommand):
    help = "Prepare the demo site on first start (accounts, demo survey, demo jobs); safe to repeat."

    def add_arguments(self, parser):
        parser.add_argument("--print-logins", action="store_true", help="Only print the URLs and logins.")
        parser.add_argument("--url", default="http://127.0.0.1:8000")
        parser.add_argument("--no-jobs", action="store_true", help="Do not queue the demo pipeline.")

    def handle(self, *args, print_logins=False, url="", no_jobs=False, **options):
        if print_logins:
            demo.print_logins(self.stdout, url)
            return
        demo.ensure_accounts()
        demo.ensure_demo_data(self.stdout)
        if not no_jobs:
            demo.ensure_demo_jobs(self.stdout)
