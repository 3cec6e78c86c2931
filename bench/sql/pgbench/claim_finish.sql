-- Baseline (b): the minimal claim-and-finish pattern, two transactions per
-- job (the claim commits before the work, as a runner's does).
update bench.claim set status = 'running', claimed_at = now()
where id = (
    select c.id from bench.claim as c
    where c.status = 'pending'
    order by c.id
    limit 1
    for update skip locked
)
returning id \gset
update bench.claim set status = 'done', finished_at = now() where id = :id;
