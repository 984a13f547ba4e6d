import re,statistics
lines=open('trace.txt').read().split('\n')
ev=[];cur=None
for l in lines:
    if l.startswith('M='):
        m=dict(re.findall(r'(\w+)=("[^"]*"|\S+)',l)); cur={'l':l,'m':m,'stack':[]}; ev.append(cur)
    elif cur is not None and l.startswith('\t') and not l.startswith('\t\t'):
        if len(cur['stack'])<8: cur['stack'].append(l.strip().split(' @')[0])
gaps={'caller':[],'callee':[]}
pending={}
for e in ev:
    l=e['l']; m=e['m']
    if 'StateTransition' not in l: continue
    g=m['G']; t=int(m['Time'])
    if 'Waiting->Runnable' in l and g!='-1':
        s=' '.join(e['stack'])
        k='caller' if 'deliver' in s else ('callee' if 'Callee).Receive' in s else None)
        if k: pending[g]=(k,t)
    if 'Running->Waiting' in l and '"network"' in l and g in pending:
        k,t0=pending.pop(g); gaps[k].append((t-t0)/1000)
for k,v in gaps.items():
    v.sort(); n=len(v)
    print(k,n,'p10 %.1f p50 %.1f p90 %.1f mean %.1f'%(v[n//10],v[n//2],v[9*n//10],sum(v)/n))
