-- Prepended to every availability script (see availability.py). Redis runs a script alone, from its first
-- command to its last, so each script below is one atomic step whatever the number of callers.
--
-- ARGV[1] is a JSON object with the key prefixes built by callstream_common.redis_store; the helpers here
-- complete them exactly as redis_store.agent_key / ready_key / pbx_agents_key do. ARGV[2] is the
-- operation's own JSON arguments. Every value the scripts write is a string built by Python, so no number
-- goes through Lua's 14-digit number formatting.
local names = cjson.decode(ARGV[1])
local args = cjson.decode(ARGV[2])
local NULL = cjson.null

local function agent_key(agent_id) return names.agent_prefix .. agent_id end
local function ready_key(pbx_id, queue_id) return names.ready_prefix .. pbx_id .. ':' .. queue_id end
local function pbx_agents_key(pbx_id) return names.pbx_agents_prefix .. pbx_id end
local CALL_AGENTS = names.call_agents

-- States in which the hash carries the call the agent is busy with.
local CALL_STATES = {reserved = true, ringing = true, on_call = true, wrap_up = true}

local function contains(list, value)
    for _, item in ipairs(list) do
        if item == value then return true end
    end
    return false
end

-- Out of every ready set of the agent: all its queues on its PBX (ZREM of a non-member is a no-op).
local function leave_ready(agent_id, pbx_id, queues_json)
    for queue_id, _ in pairs(cjson.decode(queues_json)) do
        redis.call('ZREM', ready_key(pbx_id, queue_id), agent_id)
    end
end

-- Whether `scores` has one for each queue; checked before any write, since Redis does not roll back a
-- script that fails half-way.
local function scores_cover(queues_json, scores)
    if scores == nil or scores == NULL then return false end
    for queue_id, _ in pairs(cjson.decode(queues_json)) do
        if type(scores[queue_id]) ~= 'string' then return false end
    end
    return true
end

-- Into the ready set of each of its queues, with the score Python computed for that queue's strategy.
local function enter_ready(agent_id, pbx_id, queues_json, scores)
    for queue_id, _ in pairs(cjson.decode(queues_json)) do
        redis.call('ZADD', ready_key(pbx_id, queue_id), scores[queue_id], agent_id)
    end
end

-- The call index: call id -> the space-separated ids of the agents whose hash holds that call.
local function holders(call_id)
    local value = redis.call('HGET', CALL_AGENTS, call_id)
    local list = {}
    if value then
        for agent_id in string.gmatch(value, '%S+') do table.insert(list, agent_id) end
    end
    return list
end

local function hold(call_id, agent_id)
    local list = holders(call_id)
    if not contains(list, agent_id) then
        table.insert(list, agent_id)
        redis.call('HSET', CALL_AGENTS, call_id, table.concat(list, ' '))
    end
end

local function unhold(call_id, agent_id)
    if call_id == nil or call_id == false or call_id == '' then return end
    local kept = {}
    for _, other in ipairs(holders(call_id)) do
        if other ~= agent_id then table.insert(kept, other) end
    end
    if #kept == 0 then
        redis.call('HDEL', CALL_AGENTS, call_id)
    else
        redis.call('HSET', CALL_AGENTS, call_id, table.concat(kept, ' '))
    end
end
