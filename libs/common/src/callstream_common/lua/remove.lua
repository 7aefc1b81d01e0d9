-- remove (logout): the agent leaves every ready set, the PBX index and the call index, and its hash goes.
-- KEYS[1]: the agent hash. Returns {applied, previous state, previous call id}; refused when the agent is
-- unknown or, if expected states were given, in another state.
local key = KEYS[1]
local agent_id = args.agent_id
local f = redis.call('HMGET', key, 'state', 'call_id', 'pbx_id', 'queues')
local state, call_id, pbx_id, queues = f[1], f[2], f[3], f[4]
if not state then return {0, '', ''} end
if args.expect_states ~= NULL and not contains(args.expect_states, state) then
    return {0, state, call_id}
end
leave_ready(agent_id, pbx_id, queues)
unhold(call_id, agent_id)
redis.call('SREM', pbx_agents_key(pbx_id), agent_id)
redis.call('DEL', key)
return {1, state, call_id}
