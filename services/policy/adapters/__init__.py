"""Mixer's adapters, as the policy service runs them: denier and listchecker answer checks;
memquota and redisquota count quotas."""
