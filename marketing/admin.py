# Admin registrations for marketing arrive with the issue that builds its models.
