1024 SHA256:l4ryRqaBcYbYNjTLzMDuk7qDe361U0ceDMVhoJnyrWU dsa@sshbridge (DSA)
