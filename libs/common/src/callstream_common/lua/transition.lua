-- Compare-and-set of one agent's state: set_state, make_available and release.
-- KEYS[1]: the agent hash. Returns {code, previous state, previous call id}: code 1 applied, 0 refused (the
-- agent is unknown, or its state or call id is not the expected one), -1 the hash changed since Python read
-- it to compute the ready scores (only when the new state is available): read again and retry.
local key = KEYS[1]
local agent_id = args.agent_id
local f = redis.call('HMGET', key, 'state', 'call_id', 'ver', 'pbx_id', 'queues')
local state, call_id, ver, pbx_id, queues = f[1], f[2], f[3], f[4], f[5]
if not state then
    return {0, '', ''}
end
if not contains(args.expect_states, state) then
    return {0, state, call_id}
end
if args.expect_call_id ~= NULL and args.expect_call_id ~= call_id then
    return {0, state, call_id}
end

local new_state = args.state
if new_state == 'available' then
    -- The scores were computed from a read of this hash; they are valid only if nothing moved since.
    if args.expect_ver ~= ver or not scores_cover(queues, args.scores) then
        return {-1, state, call_id}
    end
end

local new_call_id = ''
if args.call_id ~= NULL then
    new_call_id = args.call_id
elseif CALL_STATES[new_state] then
    new_call_id = call_id
end

if new_state == 'available' then
    enter_ready(agent_id, pbx_id, queues, args.scores)
    redis.call('HSET', key, 'draw', args.draw)
else
    -- Always, not only when leaving available: it also clears a membership left behind by a past bug.
    leave_ready(agent_id, pbx_id, queues)
end

if new_call_id ~= call_id then
    unhold(call_id, agent_id)
    if new_call_id ~= '' then
        hold(new_call_id, agent_id)
        redis.call('HSET', key, 'reserved_at', args.now)
    else
        redis.call('HSET', key, 'reserved_at', '')
    end
end

if new_state == 'on_call' and state ~= 'on_call' then
    if redis.call('HGET', key, 'calls_day') == args.day then
        redis.call('HINCRBY', key, 'calls_today', 1)
    else
        redis.call('HSET', key, 'calls_today', '1', 'calls_day', args.day)
    end
end

local reason = ''
if args.reason ~= NULL then reason = args.reason end
redis.call('HSET', key, 'state', new_state, 'call_id', new_call_id, 'reason', reason, 'since', args.now)
redis.call('HINCRBY', key, 'ver', 1)
return {1, state, call_id}
