"""Vector envs beyond Gymnasium's own: :class:`RayVectorEnv`, env workers as Ray actors on a machine or a cluster.

``skill_gym.make_vec(env_id, n, vectorization_mode="ray", vector_kwargs={...})`` builds one (see
:mod:`skill_gym.vector.ray_pool`); :mod:`skill_gym.vector.env_worker` is what each worker runs.
"""

from skill_gym.vector.env_worker import EnvWorker, make_env
from skill_gym.vector.ray_pool import RayVectorEnv, connect, make_ray_vec

__all__ = ["EnvWorker", "RayVectorEnv", "connect", "make_env", "make_ray_vec"]
