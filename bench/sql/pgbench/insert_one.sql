-- Baseline (a): one-row INSERT, one transaction.
insert into bench.insert_one (payload) values ('{}');
