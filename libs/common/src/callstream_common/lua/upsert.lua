-- upsert_agent: create the agent (logged_out) or replace its configuration: PBX, endpoint, skills, queues.
-- KEYS[1]: the agent hash. Returns {code, previous state}: code 1 applied, -1 the hash changed since Python
-- read it (scores or existence are stale): read again and retry.
local key = KEYS[1]
local agent_id = args.agent_id
local f = redis.call('HMGET', key, 'state', 'ver', 'pbx_id', 'queues')
local state, ver, old_pbx, old_queues = f[1], f[2], f[3], f[4]

if not state then
    if args.expect_ver ~= NULL then return {-1, ''} end
    redis.call('HSET', key, 'state', 'logged_out', 'pbx_id', args.pbx_id, 'endpoint', args.endpoint,
        'skills', args.skills, 'queues', args.queues, 'call_id', '', 'reason', '', 'since', args.now,
        'reserved_at', '', 'last_offered', '0', 'calls_today', '0', 'calls_day', '', 'draw', '0', 'ver', '1')
    redis.call('SADD', pbx_agents_key(args.pbx_id), agent_id)
    return {1, ''}
end

if args.expect_ver ~= ver then return {-1, state} end
if state == 'available' then
    if not scores_cover(args.queues, args.scores) then return {-1, state} end
    leave_ready(agent_id, old_pbx, old_queues)
    enter_ready(agent_id, args.pbx_id, args.queues, args.scores)
else
    leave_ready(agent_id, old_pbx, old_queues)
end
if old_pbx ~= args.pbx_id then
    redis.call('SREM', pbx_agents_key(old_pbx), agent_id)
    redis.call('SADD', pbx_agents_key(args.pbx_id), agent_id)
end
redis.call('HSET', key, 'pbx_id', args.pbx_id, 'endpoint', args.endpoint, 'skills', args.skills,
    'queues', args.queues)
redis.call('HINCRBY', key, 'ver', 1)
return {1, state}
