# A model image: the serving runtime `cdk deploy` shipped (SERVING_RUNTIME, pinned by digest)
# with a new model as its last layer. The trainer builds it in seconds: no base image pull from
# the public registry and no package index, and the runtime is the deployed one byte for byte.
ARG SERVING_RUNTIME
# hadolint ignore=DL3006
FROM ${SERVING_RUNTIME}
COPY model/ ${LAMBDA_TASK_ROOT}/model/
