# One image for every nerloop process (web, inference worker, training worker, beat);
# docker-compose.yml picks the command. The train extra brings torch 2.13.0 (CPU).
FROM python:3.11-slim

# Static files live in the image, outside the /data volume: a rebuilt image serves its own.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    NERLOOP_DATA_DIR=/data NERLOOP_STATIC_ROOT=/app/static
WORKDIR /app

COPY pyproject.toml README.md ./
COPY nerloop ./nerloop
COPY annotation ./annotation
COPY inference ./inference
COPY learner ./learner
COPY frontend ./frontend
COPY manage.py ./
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -e '.[train]'

# Build-time steps only need some SECRET_KEY; the real one comes from the environment.
# collectstatic fills NERLOOP_STATIC_ROOT for WhiteNoise, which serves /static/ from gunicorn
# with DEBUG off. (The UI's compiled Chinese catalogues, the .mo files, are in git.)
RUN SECRET_KEY=build-only-secret python manage.py collectstatic --noinput -v0

RUN useradd --create-home --uid 1000 nerloop && mkdir -p /data && chown nerloop /data
USER nerloop
EXPOSE 8000
CMD ["gunicorn", "nerloop.wsgi:application", "--bind", "0.0.0.0:8000"]
