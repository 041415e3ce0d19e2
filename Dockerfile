# One image for every nerloop process (web, inference worker, training worker, beat);
# docker-compose.yml picks the command. The train extra brings torch 2.13.0 (CPU).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    NERLOOP_DATA_DIR=/data
WORKDIR /app

COPY pyproject.toml README.md ./
COPY nerloop ./nerloop
COPY annotation ./annotation
COPY inference ./inference
COPY learner ./learner
COPY frontend ./frontend
COPY manage.py ./
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -e '.[train]' \
    && DEBUG=1 python manage.py collectstatic --noinput

RUN useradd --create-home --uid 1000 nerloop && mkdir -p /data && chown nerloop /data
USER nerloop
EXPOSE 8000
CMD ["gunicorn", "nerloop.wsgi:application", "--bind", "0.0.0.0:8000"]
