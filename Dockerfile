# Kameng production image: gunicorn (web), Celery worker and beat all run from this image.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBUG=false

RUN groupadd --system kameng \
 && useradd --system --gid kameng --home-dir /app --no-create-home kameng

WORKDIR /app
# A CJK font for the campaign share images (marketing/campaigns.py, CAMPAIGN_SHARE_FONTS).
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-wqy-microhei \
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=kameng:kameng . .

# collectstatic needs production settings to import; these throwaway values exist only in this
# build step (the running container gets real ones from the environment).
RUN SECRET_KEY=build-only-build-only-build-only-build-only-build-only \
    ALLOWED_HOSTS=build DATABASE_URL=postgres://build@build/build REDIS_URL=redis://build:6379/0 \
    EMAIL_URL=smtp://build:25 SITE_URL=https://build \
    CARD_CODE_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --no-input --verbosity 0 \
 && mkdir -p /app/media /app/var/imports && chown -R kameng:kameng /app/media /app/var

USER kameng
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"

CMD ["gunicorn", "kameng.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", "--forwarded-allow-ips", "*"]
